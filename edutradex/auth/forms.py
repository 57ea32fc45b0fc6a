from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _min_password_length(form, field):
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(field.data or "") < minimum:
        raise ValidationError(f"Password must be at least {minimum} characters.")


class RegisterForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
    email = EmailField(
        "Email",
        filters=[_strip],
        validators=[DataRequired(), Length(max=254), Email(message="Enter a valid email address.", check_deliverability=False)],
    )
    password = PasswordField("Password", validators=[DataRequired(), _min_password_length, Length(max=128)])
    confirm = PasswordField("Confirm password", validators=[DataRequired(), EqualTo("password", message="Passwords do not match.")])


class LoginForm(FlaskForm):
    email = EmailField("Email", filters=[_strip], validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])
    remember = BooleanField("Keep me signed in")


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=128)])
    new_password = PasswordField("New password", validators=[DataRequired(), _min_password_length, Length(max=128)])


class ResetDemoForm(FlaskForm):
    confirm = BooleanField("I understand my demo balance goes back to the starting amount", validators=[DataRequired(message="Tick the box to confirm the reset.")])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: for POST buttons such as logout."""
